"""triotok.http"""
