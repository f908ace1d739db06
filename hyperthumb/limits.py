"""The sizes the product accepts, for photos and for the HR size a thumbnail's marker claims."""

MAX_PIXELS = 100_000_000  # above 8192x8192 (67 MP) with room; beyond this we refuse (bombs)
MIN_SIDE = 32  # smaller has no room for one 8x8 block of the 4x thumbnail
