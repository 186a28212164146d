"""The board side: one jetson-stats client, its raw samples, and the profile recorder."""
