"""triotok.testing"""
