"""Data room: manifests of stems and vocals-only rows, the one stem loader, synthetic singers."""
