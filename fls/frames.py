"""Frame geometry: the Atari screen the emulator draws and the observation the networks see.

Every module that needs one of these numbers imports it from here, so a shape check, a buffer and a
rescale can never disagree about it. The preprocessing that maps one onto the other is
``fls.preprocessing`` (docs/environments.md, "Preprocessing: what one observation is"). No imports, so
that light modules (the metrics, the Atari-HEAD parser) can use it without loading OpenCV.
"""

from __future__ import annotations

FRAME_ROWS = 210  # raw Atari screen height; Atari-HEAD gaze y is a row in [0, 210)
FRAME_COLS = 160  # raw Atari screen width; gaze x is a column in [0, 160)
FRAME_SHAPE = (FRAME_ROWS, FRAME_COLS)  # saliency maps and fixation counts are scored at this size

OBS_SIZE = 84  # the network's square input frame (gray, area-resized from the raw screen)
STACK = 4  # processed frames stacked into one observation, oldest first
OBS_SHAPE = (STACK, OBS_SIZE, OBS_SIZE)  # one observation, channels first, uint8

FRAME_SKIP = 4  # raw emulator frames per agent step
