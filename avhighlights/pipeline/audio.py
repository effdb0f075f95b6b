"""Streaming mono audio decode through an ffmpeg pipe, in fixed-length chunks.

The chunks cover [0, duration) exactly: round(duration * sample_rate) samples in total, the tail
zero-padded when the audio track ends early and trimmed when it runs longer than the file's
duration. `aresample=async=1:first_pts=0` fills gaps and aligns the first sample to t = 0.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator

import numpy as np

from avhighlights.core.errors import CorruptMediaError
from avhighlights.core.types import AudioChunk, VideoInfo
from avhighlights.pipeline.ffargs import safe_media_arg
from avhighlights.pipeline.probe import last_stderr_line

BYTES_PER_SAMPLE = 4  # float32


def total_samples(info: VideoInfo, sample_rate: int) -> int:
    return int(round(info.duration_s * sample_rate))


def audio_chunks(info: VideoInfo, sample_rate: int, chunk_s: float = 60.0) -> Iterator[AudioChunk]:
    """Consecutive mono float32 chunks of `chunk_s` (the last one shorter) covering [0, duration)."""
    if sample_rate <= 0 or chunk_s <= 0:
        raise ValueError(f"sample_rate and chunk_s must be positive, got {sample_rate}, {chunk_s}")
    if not info.has_audio:
        yield from _silent_chunks(info, sample_rate, chunk_s)
        return
    yield from _decoded_chunks(info, sample_rate, chunk_s)


def _chunk_lengths(n_total: int, chunk_len: int) -> Iterator[tuple[int, int]]:
    """(first sample, length) of each chunk."""
    for first in range(0, n_total, chunk_len):
        yield first, min(chunk_len, n_total - first)


def _silent_chunks(info: VideoInfo, sample_rate: int, chunk_s: float) -> Iterator[AudioChunk]:
    chunk_len = max(1, int(round(chunk_s * sample_rate)))
    for first, length in _chunk_lengths(total_samples(info, sample_rate), chunk_len):
        yield AudioChunk(first / sample_rate, sample_rate, np.zeros(length, np.float32), silent_substitute=True)


def _decoded_chunks(info: VideoInfo, sample_rate: int, chunk_s: float) -> Iterator[AudioChunk]:
    chunk_len = max(1, int(round(chunk_s * sample_rate)))
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", safe_media_arg(info.path), "-map", "0:a:0", "-vn", "-sn", "-dn",
           "-af", "aresample=async=1:first_pts=0", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "pipe:"]
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr)
        try:
            for first, length in _chunk_lengths(total_samples(info, sample_rate), chunk_len):
                data = proc.stdout.read(length * BYTES_PER_SAMPLE)
                if len(data) < length * BYTES_PER_SAMPLE:
                    _check_exit(info, proc, stderr)
                yield AudioChunk(first / sample_rate, sample_rate, _padded(data, length))
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()


def _padded(data: bytes, length: int) -> np.ndarray:
    """`length` float32 samples from raw bytes, zero-padded at the end."""
    usable = len(data) // BYTES_PER_SAMPLE * BYTES_PER_SAMPLE
    samples = np.zeros(length, np.float32)  # (length,)
    decoded = np.frombuffer(data[:usable], dtype="<f4")
    samples[: len(decoded)] = decoded
    return samples


def _check_exit(info: VideoInfo, proc: subprocess.Popen, stderr) -> None:
    """At end of stream: a clean exit means the track is shorter (pad); an error is raised."""
    if proc.wait() != 0:
        stderr.seek(0)
        raise CorruptMediaError(info.path, f"audio decode failed ({last_stderr_line(stderr.read())})")


def read_audio(info: VideoInfo, sample_rate: int) -> np.ndarray:
    """The whole mono track as one (n,) float32 array (for short videos and tests)."""
    chunks = [chunk.samples for chunk in audio_chunks(info, sample_rate)]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
