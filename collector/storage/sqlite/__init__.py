"""The SQLite backend (the default): events, rollups, reports, privacy, accounts, saved funnels."""
