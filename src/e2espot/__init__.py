"""e2espot: precise event spotting in sports videos."""
__version__ = "0.1.0"
