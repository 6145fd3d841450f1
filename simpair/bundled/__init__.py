"""Models that ship inside the package as small adapters over e5-small (see each README.md)."""
