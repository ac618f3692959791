"""Ads in: read ad-library records of every shape and normalise them to one typed record."""
