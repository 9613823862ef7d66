"""fls: Free-Lunch Saliency, reproduced.

Importing the package registers the ``fls/BreakoutInfiniteNoFrameskip-v4`` gymnasium id, so that any
code holding an ``import fls`` can ``gymnasium.make`` the patched environment.
"""

__version__ = "0.1.0"

from fls.envs import registration as _registration  # noqa: E402,F401  (side effect: gym registration)
