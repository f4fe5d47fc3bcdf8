"""Published reference models (placeholder on branch tdeed-import; the real package comes from spot-import)."""
