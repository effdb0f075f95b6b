"""`avhighlights pca`: fit the YouTube-8M-style PCA on your own videos, or convert the official YouTube-8M PCA
files, into the .npz artifact that `inception_v3_pca` reads (`pca_path`).

    avhighlights pca fit --videos DIR --out pca.npz [--n-components 1024] [--store S] [--set KEY=VALUE ...]
    avhighlights pca import-yt8m --dir yt8m_pca/ --out pca.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avhighlights.core.files import VIDEO_SUFFIXES, videos_under


def build_pca_subcommand(sub: argparse._SubParsersAction) -> None:
    from avhighlights.cli.options import device_name
    from avhighlights.cli.weights import add_weights_dir_argument

    p = sub.add_parser("pca", help="fit or import the PCA used by the inception_v3_pca extractor",
                       description="Write the PCA artifact (mean, components, eigenvalues) of inception_v3_pca.")
    actions = p.add_subparsers(dest="pca_action", required=True, metavar="ACTION")
    fit = actions.add_parser("fit", help="fit on the 1-fps Inception-v3 pool features of every video in a folder")
    fit.add_argument("--videos", required=True, type=Path, help="folder with the videos (searched recursively)")
    fit.add_argument("--out", required=True, type=Path, help="the .npz artifact to write")
    fit.add_argument("--n-components", type=int, default=1024, help="PCA dimensions (default 1024, as YouTube-8M)")
    fit.add_argument("--store", default=None, help="feature store folder or fsspec URL (default: the user store)")
    fit.add_argument("--no-cache", action="store_true", help="do not read or write the feature store")
    fit.add_argument("--device", default=None, type=device_name, help="torch device (default: cuda if present)")
    fit.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="inception_v3_pool config override, e.g. weights_path=/w/inception.pth (repeatable)")
    add_weights_dir_argument(fit)
    fit.set_defaults(handler=_cmd_fit)
    convert = actions.add_parser("import-yt8m", help="convert YouTube-8M's mean.npy/eigenvals.npy/pca_matrix.npy")
    convert.add_argument("--dir", required=True, type=Path, help="folder with the three files (yt8m_pca.tgz)")
    convert.add_argument("--out", required=True, type=Path, help="the .npz artifact to write")
    convert.add_argument("--n-components", type=int, default=1024)
    convert.set_defaults(handler=_cmd_import)


def pool_features(videos: list[Path], overrides: dict, store, device: str | None):
    """(N, 2048) raw pool rows of every video, through the feature store when given."""
    import numpy as np

    from avhighlights.extractors import create_extractor
    from avhighlights.pipeline.extract import extract_features
    from avhighlights.pipeline.probe import probe

    extractor = create_extractor("inception_v3_pool", overrides, device=device)
    rows = [extract_features(probe(v), [extractor], store)[extractor.name].values for v in videos]
    return np.concatenate(rows)


def _cmd_fit(args: argparse.Namespace) -> int:
    from avhighlights.core.errors import ConfigError
    from avhighlights.core.overrides import parse_overrides
    from avhighlights.extractors.pca import fit_pca, save_pca
    from avhighlights.extractors.store import FeatureStore

    videos = videos_under(args.videos)
    if not videos:
        raise ConfigError(f"{args.videos}: no videos ({', '.join(VIDEO_SUFFIXES)}) found")
    store = None if args.no_cache else FeatureStore(args.store)
    features = pool_features(videos, parse_overrides(args.overrides), store, args.device)
    save_pca(fit_pca(features, args.n_components), args.out)
    print(f"fitted {args.n_components} components on {len(features)} frames of {len(videos)} videos -> {args.out}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from avhighlights.extractors.pca import from_youtube8m, save_pca

    save_pca(from_youtube8m(args.dir, args.n_components), args.out)
    print(f"wrote {args.out}")
    return 0
