"""The H.264 encoder settings of every re-encoded clip, reel and smart-cut part, in one place.

libx264 (CPU), chosen on purpose:
- `-preset veryfast`: about 2x faster than `medium` for ~10 % more bytes at the same CRF; highlight clips
  are short-lived deliverables, so encode time matters more than the last percent of size. Faster presets
  were measured for the smart-cut parts and whole 2-s clips (60 frames, `-threads 1`, CPU seconds per
  process, start-up and decode included): 640x360 veryfast 0.44 s, superfast 0.37 s (1.6x the bytes),
  ultrafast 0.33 s (2.1x); 1280x720 veryfast 0.62 s, superfast 0.55 s (1.8x), ultrafast 0.46 s (2.9x). The
  encode is a small part of a short part's cost (process start-up and the decode from the keyframe are most
  of it), so 11-25 % less CPU is not worth 1.6-2.9x larger clips: veryfast stays.
- `-crf 20` for whole clips (visually transparent for 720p/1080p material); smart-cut parts (the few
  frames at each cut that must be re-encoded, see `smart_cut.py`) use `-crf 18`, close to the quality of
  typical sources, so the re-encoded seconds next to the copied ones do not look different.
- `-threads 0`: x264's own choice (1.5 threads per core, frame threading) for a process that runs alone (the
  reel); when clips are written a few at a time (`clip_pool.py`) each gets cores / workers threads, so the
  processes together do not oversubscribe the CPU.
- smart-cut parts are encoded without B-frames (`-bf 0`): their decode times then equal their presentation
  times, which `smart_cut` shifts to join the copied source frames with increasing decode times.

NVENC (`h264_nvenc`) replaces libx264 when `ffmpeg -encoders` lists it and a one-frame test encode works
(a GPU is present and the driver loads); `-preset p4` (NVIDIA's balanced preset), constant quality
`-cq` at the same numbers as the CRFs (`-b:v 0` lets the quality decide the rate). `AVH_ENCODER=libx264`
forces the CPU encoder.
"""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass

from avhighlights.pipeline.synth import ffmpeg_binary

CLIP_QUALITY = 20  # CRF (libx264) / CQ (NVENC) of whole re-encoded clips and of the reel
PART_QUALITY = 18  # of smart-cut parts, which sit next to copied source frames
AAC_ARGS = ("-c:a", "aac", "-b:a", "160k")
ENCODER_ENV = "AVH_ENCODER"  # "libx264" or "h264_nvenc": force one (NVENC still only when it works)


@dataclass(frozen=True)
class VideoEncoder:
    """One H.264 encoder and how to ask it for a quality level."""

    name: str
    base_args: tuple[str, ...]
    quality_flag: str
    threaded: bool = False  # takes -threads (CPU encoders)

    def args(self, quality: int, *, b_frames: bool = True, threads: int = 0) -> tuple[str, ...]:
        """`threads` 0: the encoder's own choice; more: at most that many (when several run at once)."""
        return ("-c:v", self.name, *self.base_args, *(("-threads", str(threads)) if self.threaded else ()),
                self.quality_flag, str(quality), "-pix_fmt", "yuv420p", *(() if b_frames else ("-bf", "0")))


LIBX264 = VideoEncoder("libx264", ("-preset", "veryfast"), "-crf", threaded=True)
NVENC = VideoEncoder("h264_nvenc", ("-preset", "p4", "-rc", "vbr", "-b:v", "0"), "-cq")


@functools.cache
def video_encoder() -> VideoEncoder:
    """NVENC when it is built in and a test encode works (unless AVH_ENCODER says libx264), else libx264."""
    if os.environ.get(ENCODER_ENV, "") != LIBX264.name and _encoder_works(NVENC):
        return NVENC
    return LIBX264


def _encoder_works(encoder: VideoEncoder) -> bool:
    base = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-v", "error"]
    try:
        listed = subprocess.run([*base, "-encoders"], capture_output=True, text=True, timeout=30).stdout
        if f" {encoder.name} " not in listed:
            return False
        test = subprocess.run([*base, "-f", "lavfi", "-i", "color=s=256x256:r=25:d=0.2", *encoder.args(CLIP_QUALITY),
                               "-f", "null", "-"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return test.returncode == 0
