"""Prometheus output: metric families from readings and health, and the pre-rendered page."""
