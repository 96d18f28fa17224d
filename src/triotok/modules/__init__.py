"""triotok.modules"""
