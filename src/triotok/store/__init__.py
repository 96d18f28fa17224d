"""triotok.store"""
