"""What a hit says, parsed: user agents, referrers, URLs and countries."""
