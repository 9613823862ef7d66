"""Registers fls's gymnasium ids on import (placeholder until BreakoutInfinite lands)."""
