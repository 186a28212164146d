"""Desired values applied to the board and confirmed in later samples."""
