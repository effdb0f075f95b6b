"""avhighlights: audio-visual video highlight detection, from raw video to highlight clips."""

__version__ = "0.1.0"
