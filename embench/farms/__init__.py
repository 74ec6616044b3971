"""Where a sweep's jobs run: this process (inline), a fresh local process each (local), a Ray cluster (ray)."""
