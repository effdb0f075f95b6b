"""The embedded default job: generate a sample video with audible events at known times, run the
whole pipeline on it with the `loudness` reference method, and say where everything went."""

from __future__ import annotations

from pathlib import Path

from avhighlights.pipeline.output_dir import prepare_output_dir, writing_to
from avhighlights.pipeline.progress import Progress
from avhighlights.pipeline.run import RunResult, score_videos
from avhighlights.pipeline.score import ScorerSpec
from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

DEMO_SPEC = SyntheticSpec(duration_s=40.0, width=480, height=270, scene_len_s=8.0,
                          event_times_s=(4.0, 13.0, 21.0, 29.0, 35.0), event_len_s=2.0)


def event_coverage(result_clips: list[tuple[float, float]], spec: SyntheticSpec) -> float:
    """Fraction of the planted event time that lies inside the selected clips."""
    total = covered = 0.0
    for start in spec.event_times_s:
        end = min(start + spec.event_len_s, spec.duration_s)
        total += end - start
        covered += sum(max(0.0, min(end, b) - max(start, a)) for a, b in result_clips)
    return covered / total if total else 0.0


def run_demo(out_dir: str | Path, progress: Progress) -> int:
    out_dir = prepare_output_dir(out_dir)
    with writing_to(out_dir):
        video = make_synthetic_video(out_dir / "sample_video.mp4", DEMO_SPEC)
    progress.message(f"generated {video} ({DEMO_SPEC.duration_s:.0f} s, loud events at "
                     f"{', '.join(f'{t:g}' for t in DEMO_SPEC.event_times_s)} s)")
    [result] = score_videos([video], ScorerSpec(method="loudness"), out_dir, store=str(out_dir / "feature_store"),
                            progress=progress)
    progress.close()
    _print_summary(result, DEMO_SPEC)
    return 0


def _print_summary(result: RunResult, spec: SyntheticSpec) -> None:
    from avhighlights.pipeline.results import read_results

    doc = read_results(result.results_json)
    spans = [(c.start_s, c.end_s) for c in doc.clips]
    print(f"scored {result.video} with method '{doc.method}'")
    for clip in doc.clips_in_time_order():
        print(f"  clip #{clip.rank}: {clip.start_s:6.2f}-{clip.end_s:6.2f} s  score {clip.score:.3f}  {clip.path}")
    print(f"selected {result.selected_s:.1f} s of {spec.duration_s:.0f} s; "
          f"planted events inside the clips: {100 * event_coverage(spans, spec):.0f}%")
    print(f"clips and reel: {result.out_dir}")
    print(f"results: {result.results_json} (+ highlights.csv, chapters.vtt, scores.png and editor timelines: "
          "highlights.otio, .fcpxml, .xml, .edl)")
    print(f"report: {result.out_dir / 'report.html'} (open it in a browser); "
          f"every video of the folder: {result.out_dir.parent / 'index.html'}")
