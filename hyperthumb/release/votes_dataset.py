"""Publishing the study's votes as a Hub dataset, with a card that says what a row is."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional, Sequence

from hyperthumb.errors import HyperThumbError
from hyperthumb.study.pool import STUDY_METHODS
from hyperthumb.study.ranking import results
from hyperthumb.study.votes import COLUMNS, VoteStore


def dataset_card(summary: dict, repo_id: str, columns: Sequence[str]) -> str:
    """The README of the published votes: what a row is, how the votes were collected, the aggregate."""
    ranking = sorted((s for s in summary["scores"] if s["bpp"] is None), key=lambda s: -s["score"])
    lines = ["---", "license: cc-by-4.0", "pretty_name: HyperThumb pairwise study votes", "configs:",
             "- config_name: default", "  data_files: votes.csv", "---", "", f"# {repo_id}", "",
             "Blind pairwise votes from the HyperThumb app's study: each row is one person's choice between two "
             "anonymous 4x reconstructions of the same crop at the same bpp, shown at 100 % zoom beside the "
             "original, sides in random order. Practice rows (`practice` = 1) have a known answer; annotators "
             "who missed it are flagged and left out of the aggregate.", "", "## Columns", "",
             *[f"- `{column}`" for column in columns], "", "## Aggregate", "",
             f"{summary['votes']} counted votes from {summary['annotators']} annotators "
             f"({summary['excluded_votes']} votes of {len(summary['flagged_annotators'])} flagged annotators "
             "left out).", ""]
    if ranking:
        lines += ["| method | Bradley-Terry score | 95 % interval |", "|---|---|---|"]
        lines += [f"| {s['method']} | {s['score']:.2f} | {s['low']:.2f} to {s['high']:.2f} |" for s in ranking]
    return "\n".join(lines) + "\n"


def publish_votes(store: VoteStore, repo_id: str, methods: Sequence[str] = STUDY_METHODS,
                  revision: Optional[str] = None) -> list[str]:
    """Uploads every vote (CSV, and Parquet where pyarrow is installed) with a dataset card to the
    Hub dataset repository `repo_id`; returns the uploaded file names. The token comes from HF_TOKEN
    or `hf auth login`."""
    from huggingface_hub import HfApi

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        store.to_csv(folder / "votes.csv")
        store.to_parquet(folder / "votes.parquet")
        summary = results(store.votes(), methods, store.flagged_annotators(), samples=200)
        (folder / "README.md").write_text(dataset_card(summary, repo_id, COLUMNS))
        files = sorted(path.name for path in folder.iterdir())
        api = HfApi()
        try:
            api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
            if revision:
                api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
            api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=folder, revision=revision,
                              commit_message=f"Upload {summary['votes']} study votes")
        except Exception as exc:  # the Hub client raises HTTP, network and auth errors of many types
            raise HyperThumbError(f"could not publish to the Hub dataset {repo_id!r} "
                                  f"({type(exc).__name__}: {exc})") from None
    return files
