"""triotok.plugins"""
