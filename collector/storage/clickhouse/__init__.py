"""The ClickHouse backend: events, visits and drop counters for owners who outgrow one machine."""
