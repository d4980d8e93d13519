"""Ingest: from a hit on the wire to pseudonymized events handed to storage."""
