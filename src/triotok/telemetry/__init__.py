"""triotok.telemetry"""
