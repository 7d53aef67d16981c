"""The checkout as a user gets it: build.py on a bare Python, the wheel, the demo."""
