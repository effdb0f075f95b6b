"""`avhighlights weights list|import`: which pretrained files each extractor needs, where they are looked for and
found, and a hash-checked way to put a file where the loader looks; plus the shared `--weights-dir` option."""

from __future__ import annotations

import argparse
import json

from avhighlights.core.errors import ConfigError


def add_weights_dir_argument(parser: argparse.ArgumentParser) -> None:
    """`--weights-dir DIR` (repeatable): folders searched (recursively) for weight files before $AVH_WEIGHTS_DIR."""
    parser.add_argument("--weights-dir", action="append", default=[], metavar="DIR",
                        help="folder searched recursively for pretrained weight files, before $AVH_WEIGHTS_DIR and "
                             "the user cache (repeatable; see `avhighlights weights list`)")


def build_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="list the pretrained weight files and import them",
                       description="List every registered extractor's weight files (name, URL, sha256, the folders "
                                   "searched in order, found or not), or import a file you downloaded: it is "
                                   "identified by its sha256 and copied into the user cache under the name the loader "
                                   "looks for.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="weight files per extractor, where they are looked for and found")
    listing.add_argument("--extractor", default=None, help="only this extractor")
    listing.add_argument("--json", action="store_true", help="one JSON document for machines")
    listing.add_argument("--verify", action="store_true", help="also hash every file found (slow for large files)")
    add_weights_dir_argument(listing)
    listing.set_defaults(handler=_cmd_list)
    importing = actions.add_parser("import", help="hash-check FILE and copy it where the loader looks")
    importing.add_argument("files", nargs="+", metavar="FILE")
    importing.add_argument("--extractor", default=None,
                           help="match only this extractor's files (needed for files without a published sha256 "
                                "whose name differs from the expected one)")
    importing.set_defaults(handler=_cmd_import)


def extractor_weight_names(only: str | None = None) -> dict[str, tuple[str, ...]]:
    """Extractor name -> the registered weight names its default configuration loads."""
    from avhighlights.extractors import EXTRACTORS, create_extractor

    names = [only] if only is not None else EXTRACTORS.names()
    return {name: create_extractor(name, device="cpu").weight_names() for name in names}


def weights_report(only: str | None = None, verify: bool = False) -> list[dict]:
    """One entry per extractor with its files: spec fields, folders searched in order, where found."""
    from avhighlights.extractors.weights import get_weight_spec

    report = []
    for extractor, names in extractor_weight_names(only).items():
        files = [_file_entry(get_weight_spec(name), verify) for name in names]
        report.append({"extractor": extractor, "files": files})
    return report


def _file_entry(spec, verify: bool) -> dict:
    from avhighlights.extractors.weights import cached_sha256, lookup

    places = lookup(spec)
    found = next((str(path) for _, path in places if path is not None), None)
    entry = {
        "name": spec.name, "filename": spec.filename, "url": spec.url or None, "sha256": spec.sha256,
        "size_bytes": spec.size_bytes, "licence": spec.licence,
        "converted_from": None if spec.converted_from is None else {
            "url": spec.converted_from.url, "sha256": spec.converted_from.sha256,
            "convert": spec.converted_from.convert},
        "searched": [{"folder": str(folder), "found": None if path is None else str(path)} for folder, path in places],
        "found": found,
    }
    if verify and found is not None:
        actual = cached_sha256(found)
        entry["found_sha256"] = actual
        entry["hash_ok"] = None if spec.sha256 is None else actual == spec.sha256.lower()
    return entry


def format_report(report: list[dict]) -> str:
    lines = []
    for item in report:
        lines.append(f"{item['extractor']}:" + ("" if item["files"] else " no weight files"))
        for f in item["files"]:
            lines += _format_file(f)
    return "\n".join(lines)


def _format_file(f: dict) -> list[str]:
    status = f"found {f['found']}" if f["found"] else "NOT FOUND"
    if "hash_ok" in f:
        status += {True: " (sha256 ok)", False: f" (sha256 MISMATCH: {f['found_sha256']})",
                   None: " (unverified)"}[f["hash_ok"]]
    lines = [f"  {f['filename']}  [{f['name']}]  {status}",
             f"    sha256 {f['sha256'] or 'unverified (none published)'}"]
    if f["converted_from"]:
        art = f["converted_from"]
        lines.append(f"    converted from {art['url']} (sha256 {art['sha256'] or 'not published'})")
    else:
        lines.append(f"    url {f['url']}")
    lines.append("    searched: " + ", ".join(p["folder"] for p in f["searched"]))
    return lines


def _cmd_list(args: argparse.Namespace) -> int:
    report = weights_report(args.extractor, verify=args.verify)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from avhighlights.extractors import EXTRACTORS
    from avhighlights.extractors.weights import import_weights

    EXTRACTORS.load_all()  # every extractor module registers its weight files on import
    names = None
    if args.extractor is not None:
        names = extractor_weight_names(args.extractor)[args.extractor]
        if not names:
            raise ConfigError(f"extractor {args.extractor!r} loads no weight files")
    for file in args.files:
        spec, target = import_weights(file, names)
        check = f"sha256 {spec.sha256} ok" if spec.sha256 else "no published sha256: unverified"
        print(f"{file}: {spec.name} ({check}) -> {target}")
    return 0
