"""The pairwise study: a pool prepared by the real methods (small random-weight models), balanced
drawing, votes in a real SQLite file exactly once, and Bradley-Terry results against a reference fit."""
from __future__ import annotations

import csv
import importlib.util
import itertools
import json
import random
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.optimize import minimize

from hyperthumb.cli import main
from hyperthumb.errors import InvalidImageError, StudyUploadError
from hyperthumb.study import ranking
from hyperthumb.study.pool import PRACTICE_BAD, PRACTICE_GOOD, STUDY_METHODS, StudyPool, box_around, detailed_boxes
from hyperthumb.study.ranking import bootstrap_scores, bradley_terry, results
from hyperthumb.study.uploads import add_photo
from hyperthumb.study.votes import COLUMNS, VoteRefused, VoteStore
from hyperthumb.zoo import ModelZoo, use_zoo
from tests.conftest import photo_like, small_checkpoint_loader

METHODS = list(STUDY_METHODS)
RANKED = ["rdbunet", "transformer", "bicubic-jpeg-sr", "bicubic-jpeg"]  # the ranking's tests: four methods of known strength
BPPS = [0.2, 0.4]
CROP = 96


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> StudyPool:
    """Two photos, two crops each, every method at two rates, through `python -m hyperthumb study prepare`."""
    folder = tmp_path_factory.mktemp("pool")
    photos = folder / "photos"
    photos.mkdir()
    for seed in (1, 2):
        photo_like(256, 192, seed=seed).save(photos / f"photo{seed}.png")
    with use_zoo(ModelZoo(loader=small_checkpoint_loader)):
        assert main(["study", "prepare", str(photos), "--bpp", *map(str, BPPS), "--out", str(folder / "pool"),
                     "--crop", str(CROP), "--crops", "2"]) == 0
    return StudyPool(folder / "pool")


def test_the_pool_holds_every_method_at_every_rate_on_each_crop(pool):
    manifest = pool.manifest
    assert manifest["methods"] == METHODS and manifest["bpps"] == BPPS and len(pool.crops) == 4
    for entry in pool.crops.values():
        original = Image.open(pool.folder / entry["original"])
        assert original.size == (CROP, CROP)
        assert {(r["method"], r["target_bpp"]) for r in entry["reconstructions"]} == set(itertools.product(METHODS,
                                                                                                           BPPS))
        for reconstruction in entry["reconstructions"]:
            region = Image.open(pool.folder / reconstruction["image"])
            assert region.size == (CROP, CROP) and 5 < reconstruction["psnr"] < 60
            assert reconstruction["lpips"] is None or 0 <= reconstruction["lpips"] < 1
    assert len(list((pool.folder / "thumbnails").glob("*.jpg"))) == 2 * len(METHODS) * len(BPPS)
    practice = manifest["practice"]
    assert practice["good"]["psnr"] > practice["bad"]["psnr"] + 3  # the known answer is plain to see


def test_crops_are_the_most_detailed_regions():
    photo = np.full((300, 400, 3), 128, np.uint8)
    photo[150:300, 200:400] = np.random.default_rng(0).integers(0, 255, (150, 200, 3))  # texture bottom right
    boxes = detailed_boxes(Image.fromarray(photo), 96, 2, random.Random(0))
    assert len(boxes) == 2
    for left, top, right, bottom in boxes:
        assert right - left == bottom - top == 96
        textured = (right - max(left, 200)) * (bottom - max(top, 150))
        assert textured >= 0.5 * 96 * 96  # mostly in the textured quarter, never in the flat rest
    (a, b) = boxes
    assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]  # not overlapping


def test_a_missing_pool_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="study prepare"):
        StudyPool(tmp_path)


def test_a_click_centres_the_crop_inside_the_photo():
    assert box_around((200, 150), (400, 300), 96) == (152, 102, 248, 198)
    assert box_around((5, 290), (400, 300), 96) == (0, 204, 96, 300)  # near a corner: moved inside
    assert box_around((50, 50), (80, 300), 96) == (0, 10, 80, 90)  # a narrow photo: the widest crop it has


@pytest.fixture
def uploads_pool(pool, tmp_path) -> StudyPool:
    """The prepared pool, with an empty uploads folder of its own and the small models."""
    with use_zoo(ModelZoo(loader=small_checkpoint_loader)):
        yield StudyPool(pool.folder, tmp_path / "uploads")


def test_an_added_photo_is_encoded_like_the_pool_at_the_clicked_crop_and_drawn(uploads_pool, store):
    photo, steps = photo_like(160, 128, seed=9), []
    added = add_photo(uploads_pool, photo, "holiday.png", centre=(100, 40),
                      progress=lambda fraction, desc: steps.append((fraction, desc)))
    assert len(added) == 1 and added[0] in uploads_pool.crops
    entry = uploads_pool.crops[added[0]]
    assert entry["photo"] == "holiday.png" and entry["box"] == [52, 0, 148, 96]
    assert {(r["method"], r["target_bpp"]) for r in entry["reconstructions"]} == set(itertools.product(METHODS, BPPS))
    assert [fraction for fraction, _ in steps] == sorted(fraction for fraction, _ in steps)
    assert len(steps) == len(METHODS) * len(BPPS) and "Encoding with" in steps[0][1]
    original = Image.open(uploads_pool.uploads / entry["original"])
    assert np.array_equal(np.asarray(original), np.asarray(photo.crop(entry["box"])))
    reopened = StudyPool(uploads_pool.folder, uploads_pool.uploads)  # kept for the next start of the app
    assert added[0] in reopened.crops and len(reopened.crops) == len(uploads_pool.crops)
    assert "holiday.png" not in "".join(p.name for p in uploads_pool.uploads.rglob("*"))  # files named by content
    rng, seen = random.Random(8), set()
    store.vote(uploads_pool.draw(store, "s", "ivy", rng).issued.id, "s", "same")  # the practice trial
    for _ in range(len(uploads_pool.conditions())):
        trial = uploads_pool.draw(store, "s", "ivy", rng)
        seen.add(trial.issued.crop)
        assert all(path.is_file() for path in (trial.original, trial.left, trial.right))
        store.vote(trial.issued.id, "s", "left")
    assert added[0] in seen  # the new crop, least voted, is drawn among the others


def test_an_added_photo_without_a_click_gives_its_most_detailed_crops(uploads_pool):
    added = add_photo(uploads_pool, photo_like(256, 192, seed=10), "park.jpg")
    assert len(added) == uploads_pool.crops_per_photo == 2


def test_photos_the_pool_cannot_take_are_refused_plainly(uploads_pool):
    with pytest.raises(InvalidImageError, match="each side must be at least 96"):
        add_photo(uploads_pool, photo_like(200, 80), "strip.png")
    with pytest.raises(InvalidImageError, match="up to 0.02 MP"):
        add_photo(uploads_pool, photo_like(160, 128), "big.png", max_pixels=20_000)
    add_photo(uploads_pool, photo_like(128, 128, seed=11), "first.png", centre=(64, 64))
    with pytest.raises(StudyUploadError, match="in the study pool already"):
        add_photo(uploads_pool, photo_like(128, 128, seed=11), "same pixels.png")
    with pytest.raises(StudyUploadError, match="limit of 1 added photos"):
        add_photo(uploads_pool, photo_like(128, 128, seed=12), "second.png", max_photos=1)
    with pytest.raises(StudyUploadError, match="takes no uploads"):
        add_photo(StudyPool(uploads_pool.folder), photo_like(128, 128, seed=13), "third.png")


@pytest.fixture
def store(tmp_path) -> VoteStore:
    return VoteStore(tmp_path / "votes" / "pool.sqlite")


def test_the_store_runs_in_wal_mode(store):
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_first_trial_is_practice_and_a_wrong_answer_flags_the_annotator(pool, store):
    rng = random.Random(0)
    trial = pool.draw(store, "s1", "alice", rng)
    assert trial.issued.practice
    assert {trial.issued.method_left, trial.issued.method_right} == {PRACTICE_GOOD, PRACTICE_BAD}
    wrong = "left" if trial.issued.method_left == PRACTICE_BAD else "right"
    store.vote(trial.issued.id, "s1", wrong)
    assert store.flagged_annotators() == {"alice"}
    assert not pool.draw(store, "s1", "alice", rng).issued.practice  # practice once per annotator
    bob = pool.draw(store, "s2", "bob", rng)
    store.vote(bob.issued.id, "s2", "left" if bob.issued.method_left == PRACTICE_GOOD else "right")
    assert store.flagged_annotators() == {"alice"}


def test_draws_are_balanced_least_voted_first_with_random_sides(pool, store):
    rng = random.Random(1)
    conditions = pool.conditions()
    assert len(conditions) == len(list(itertools.combinations(METHODS, 2))) * len(BPPS)  # every pair at every bpp
    store.vote(pool.draw(store, "s", "carol", rng).issued.id, "s", "same")  # the practice trial
    lefts = []
    for _ in range(2 * len(conditions)):
        trial = pool.draw(store, "s", "carol", rng)
        lefts.append(trial.issued.method_left)
        assert trial.left.is_file() and trial.right.is_file() and trial.original.is_file()
        store.vote(trial.issued.id, "s", rng.choice(["left", "right", "same"]))
    per_condition = {c: 0 for c in conditions}
    for (crop, a, b, bpp), n in store.condition_counts().items():
        per_condition[a, b, bpp] += n
    assert set(per_condition.values()) == {2}  # every method pair at every bpp, twice each
    assert len(set(lefts)) == len(METHODS)  # each method is shown on the left some of the time


def test_a_vote_is_accepted_once_from_the_session_it_was_issued_to(pool, store):
    trial = pool.draw(store, "mine", "dave", random.Random(2)).issued
    with pytest.raises(VoteRefused, match="not issued to this session"):
        store.vote(trial.id, "someone-else", "left")
    with pytest.raises(VoteRefused, match="not issued"):
        store.vote("forged-id", "mine", "left")
    with pytest.raises(VoteRefused, match="one of"):
        store.vote(trial.id, "mine", "A")
    vote = store.vote(trial.id, "mine", "right")
    assert vote["winner"] == trial.method_right and vote["seconds"] >= 0 and vote["annotator"] == "dave"
    with pytest.raises(VoteRefused, match="already"):
        store.vote(trial.id, "mine", "left")
    assert len(store.votes()) == 1


def test_concurrent_replays_of_one_trial_store_one_vote(pool, store):
    trial = pool.draw(store, "s", "erin", random.Random(3)).issued
    outcomes = []

    def replay():
        try:
            store.vote(trial.id, "s", "left")
            outcomes.append("stored")
        except VoteRefused:
            outcomes.append("refused")

    threads = [threading.Thread(target=replay) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["stored"] and len(store.votes()) == 1


def test_another_crop_never_redraws_the_trial_just_shown(pool, store):
    rng = random.Random(5)
    store.vote(pool.draw(store, "s", "gus", rng).issued.id, "s", "same")  # the practice trial
    shown = pool.draw(store, "s", "gus", rng).issued
    for _ in range(40):  # no votes between: every condition stays least-voted, so only `skipped` steers
        skipped = store.condition_of(shown.id)
        assert skipped == (shown.crop, *sorted((shown.method_left, shown.method_right)), shown.bpp)
        shown = pool.draw(store, "s", "gus", rng, skipped=skipped).issued
        assert store.condition_of(shown.id) != skipped
    assert store.condition_of("no-such-trial") is None


def test_undo_removes_the_sessions_last_vote_and_frees_its_trial(pool, store):
    rng = random.Random(4)
    first, second = (pool.draw(store, "s", "fay", rng).issued for _ in range(2))
    store.vote(first.id, "s", "left")
    store.vote(second.id, "s", "same")
    assert store.undo("other-session") is None
    assert store.undo("s")["trial_id"] == second.id
    assert [v["trial_id"] for v in store.votes()] == [first.id] and store.session_votes("s") == 1
    store.vote(second.id, "s", "right")  # answered again after the undo
    assert store.session_votes("s") == 2


def test_export_has_every_vote_and_its_metrics(pool, store, tmp_path):
    rng = random.Random(5)
    for choice in ("left", "right", "same"):
        store.vote(pool.draw(store, "s", "gus", rng).issued.id, "s", choice)
    with open(store.to_csv(tmp_path / "votes.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 3
    assert rows[0]["practice"] == "1" and rows[1]["practice"] == "0" and float(rows[1]["psnr_left"]) > 5
    assert rows[2]["choice"] == "same" and rows[2]["winner"] == ""
    parquet = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed")
    assert parquet.read_table(store.to_parquet(tmp_path / "votes.parquet")).to_pylist() == store.votes()


def test_the_csv_export_writes_a_formula_name_as_text(pool, store, tmp_path):
    """A name a spreadsheet would run (CSV injection) is exported with a leading apostrophe; the vote
    file itself keeps the name as given."""
    names = ['=HYPERLINK("http://x","y")', "+1", "-2", "@sum(A1)", "plain"]
    for index, name in enumerate(names):
        store.vote(pool.draw(store, f"s{index}", name, random.Random(index)).issued.id, f"s{index}", "left")
    with open(store.to_csv(tmp_path / "votes.csv"), newline="") as handle:
        exported = [row["annotator"] for row in csv.DictReader(handle)]
    assert exported == ["'" + name for name in names[:-1]] + ["plain"]
    assert [vote["annotator"] for vote in store.votes()] == names


def test_a_preference_percentage_reads_a_score_as_a_chance():
    assert ranking.preference_percent(0) == 50
    assert ranking.preference_percent(1) == pytest.approx(100 * np.e / (1 + np.e))
    assert ranking.preference_percent(-3) < 5 < 95 < ranking.preference_percent(3)


def test_a_reset_removes_every_vote_and_keeps_a_copy(pool, store):
    rng = random.Random(12)
    for choice in ("left", "right"):
        store.vote(pool.draw(store, "s", "jo", rng).issued.id, "s", choice)
    removed, copy = store.reset()
    assert removed == 2 and store.votes() == [] and store.condition_counts() == {}
    assert len(VoteStore(copy).votes()) == 2 and copy.parent == store.path.parent


# A fixed synthetic study: four methods of known strength, votes drawn from the Bradley-Terry model.
TRUE_SCORES = {"rdbunet": 0.9, "transformer": 0.5, "bicubic-jpeg-sr": -0.3, "bicubic-jpeg": -1.1}


def synthetic_votes(count: int, seed: int = 0, tie_rate: float = 0.1) -> list[dict]:
    rng = np.random.default_rng(seed)
    votes = []
    for index in range(count):
        left, right = rng.choice(list(TRUE_SCORES), 2, replace=False)
        p_left = 1 / (1 + np.exp(TRUE_SCORES[right] - TRUE_SCORES[left]))
        tie = rng.random() < tie_rate
        winner = None if tie else (left if rng.random() < p_left else right)
        psnr_left, psnr_right = 30 + TRUE_SCORES[left], 30 + TRUE_SCORES[right]
        votes.append({"method_left": left, "method_right": right, "winner": winner, "practice": 0,
                      "choice": "same" if tie else ("left" if winner == left else "right"),
                      "annotator": f"a{index % 5}", "crop": f"c{index % 3}", "bpp": (0.1, 0.3)[index % 2],
                      "seconds": 2.0, "psnr_left": psnr_left, "psnr_right": psnr_right,
                      "lpips_left": 0.3 - psnr_left / 100, "lpips_right": 0.3 - psnr_right / 100})
    return votes


def reference_fit(votes: list[dict], methods: list[str], prior: float) -> np.ndarray:
    """The same model fitted independently: maximise the log-likelihood (ties half a win each, `prior`
    wins each way per pair) over the scores with a general-purpose optimiser."""
    index = {m: i for i, m in enumerate(methods)}
    wins = np.full((len(methods), len(methods)), prior) - prior * np.eye(len(methods))
    for vote in votes:
        i, j = index[vote["method_left"]], index[vote["method_right"]]
        share = 0.5 if vote["winner"] is None else float(vote["winner"] == vote["method_left"])
        wins[i, j] += share
        wins[j, i] += 1 - share

    def negative_log_likelihood(scores):
        difference = scores[:, None] - scores[None, :]
        return -(wins * -np.logaddexp(0, -difference)).sum()

    fitted = minimize(negative_log_likelihood, np.zeros(len(methods)), method="BFGS", options={"gtol": 1e-10}).x
    return fitted - fitted.mean()


def test_bradley_terry_matches_a_reference_fit():
    votes = synthetic_votes(300)
    for prior in (0.0, 0.5):
        ours = bradley_terry(ranking._win_matrix(ranking._outcomes(votes, RANKED), len(RANKED)), prior)
        np.testing.assert_allclose(ours, reference_fit(votes, RANKED, prior), atol=1e-4)


def test_a_known_ranking_is_recovered_with_intervals_that_cover_it():
    votes = synthetic_votes(600, seed=1, tie_rate=0)  # ties (half a win each) would pull scores towards 0
    scores, low, high = bootstrap_scores(votes, RANKED, samples=300)
    assert [RANKED[i] for i in np.argsort(-scores)] == list(TRUE_SCORES)
    truth = np.array([TRUE_SCORES[m] for m in RANKED])  # mean 0 already
    assert np.all(low <= truth) and np.all(truth <= high) and np.all(low < scores) and np.all(scores < high)
    assert np.all(high - low < 0.8)


def test_scores_and_intervals_match_the_recorded_hand_written_fit():
    """tests/data/study_ranking_recorded.json: the figures of the hand-written MM fit and bootstrap that
    choix and scipy replaced, on 300 fixed votes. The scores are one maximum: equal to 1e-6. The
    intervals are equal only in distribution (another resampler may draw other votes), so each end may
    differ by 4 standard deviations of the difference of two independent draws, sqrt(2) times the
    spread the old code's end had over 200 seeds (0.009-0.012: a tolerance of 0.05-0.07)."""
    recorded = json.loads((Path(__file__).parent / "data" / "study_ranking_recorded.json").read_text())
    methods, votes, spread = recorded["methods"], recorded["votes"], recorded["interval_spread"]
    wins = ranking._win_matrix(ranking._outcomes(votes, methods), len(methods))
    np.testing.assert_allclose(bradley_terry(wins, 0.0), recorded["scores_without_prior"], rtol=0, atol=1e-6)
    scores, low, high = bootstrap_scores(votes, methods, recorded["samples"], recorded["seed"], recorded["prior"])
    np.testing.assert_allclose(scores, recorded["scores"], rtol=0, atol=1e-6)
    for ends, end in ((low, "low"), (high, "high")):
        tolerance = 4 * np.sqrt(2) * np.array(spread[f"{end}_std"])
        assert np.all(np.abs(ends - recorded[end]) <= tolerance), (end, ends - recorded[end], tolerance)


def test_a_single_vote_has_its_score_as_its_interval():
    vote = {"method_left": RANKED[0], "method_right": RANKED[1], "winner": RANKED[0]}
    scores, low, high = bootstrap_scores([vote], RANKED)
    assert scores[0] == scores.max() > 0 and np.array_equal(low, scores) and np.array_equal(high, scores)


def test_a_method_that_never_loses_keeps_a_finite_score():
    votes = [v for v in synthetic_votes(200) if v["winner"] != "bicubic-jpeg" or v["method_left"] == "rdbunet"]
    votes = [v for v in votes if not (v["winner"] and v["winner"] != "rdbunet" and "rdbunet" in
                                      (v["method_left"], v["method_right"]))]
    scores = bradley_terry(ranking._win_matrix(ranking._outcomes(votes, RANKED), len(RANKED)))
    assert np.all(np.isfinite(scores)) and scores[RANKED.index("rdbunet")] == scores.max()


def test_results_report_rounded_percentages_pairs_agreement_and_metrics():
    votes = synthetic_votes(240, seed=2)
    votes.append({**votes[0], "annotator": "careless"})
    summary = results(votes, RANKED, flagged={"careless"}, samples=100)
    assert summary["votes"] == 240 and summary["excluded_votes"] == 1 and summary["flagged_annotators"] == ["careless"]
    assert {s["bpp"] for s in summary["scores"]} == {None, 0.1, 0.3}
    overall = {s["method"]: s for s in summary["scores"] if s["bpp"] is None}
    assert max(overall, key=lambda m: overall[m]["score"]) == "rdbunet"
    assert all(s["score"] == round(s["score"], 2) and s["low"] <= s["score"] <= s["high"] for s in overall.values())
    percent = summary["win_rates"]["percent"]
    assert all(p is None or isinstance(p, int) for row in percent for p in row)
    for i, j in itertools.combinations(range(4), 2):
        assert abs(percent[i][j] + percent[j][i] - 100) <= 1
    assert sum(p["votes"] for p in summary["pairs"]) == 240 and len(summary["pairs"]) == 12
    assert summary["agreement"]["annotator_pairs"] > 0 and 0 <= summary["agreement"]["agree_pct"] <= 100
    # the synthetic annotators prefer the higher-PSNR (lower-LPIPS) side more often than not
    for metric in ("psnr", "lpips"):
        assert summary["metrics"][metric]["agree_pct"] > 55 and summary["metrics"][metric]["correlation"] > 0.1
    figure = ranking.scores_figure(summary)
    assert {trace.name for trace in figure.data} == set(RANKED)
    assert ranking.win_rate_figure(summary).data[0].z[0][0] is None
    json.dumps(summary)  # the public aggregate is plain JSON


def test_no_votes_give_an_empty_aggregate():
    summary = results([], RANKED)
    assert summary["votes"] == 0 and summary["scores"] == [] and summary["median_seconds"] is None


def test_publish_uploads_the_votes_and_a_dataset_card(pool, store, monkeypatch):
    calls = []

    class RecordingApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, folder_path, **kwargs):
            files = {path.name: path.read_bytes() for path in folder_path.iterdir()}
            calls.append(("upload_folder", files, kwargs))

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    rng = random.Random(6)
    practice = pool.draw(store, "s", "hal", rng).issued
    store.vote(practice.id, "s", "left" if practice.method_left == PRACTICE_GOOD else "right")
    for _ in range(3):
        store.vote(pool.draw(store, "s", "hal", rng).issued.id, "s", "left")
    assert main(["study", "publish", "--repo", "owner/votes", "--db", str(store.path)]) == 0
    (_, repo, created), (_, files, uploaded) = calls
    assert repo == "owner/votes" and created["repo_type"] == uploaded["repo_type"] == "dataset"
    assert uploaded["repo_id"] == "owner/votes"
    assert len(files["votes.csv"].decode().strip().splitlines()) == 5  # header + 4 votes, practice included
    assert "votes.parquet" in files or importlib.util.find_spec("pyarrow") is None
    card = files["README.md"].decode()
    assert card.startswith("---\n") and "data_files: votes.csv" in card and "3 counted votes" in card


def test_publish_turns_hub_failures_into_a_clear_error(store, monkeypatch, capsys):
    class UnreachableApi:
        def create_repo(self, repo_id, **kwargs):
            raise ConnectionError("Name or service not known")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", UnreachableApi)
    assert main(["study", "publish", "--repo", "owner/votes", "--db", str(store.path)]) == 1
    assert "could not publish to the Hub dataset 'owner/votes'" in capsys.readouterr().err


def test_a_simulated_annotator_following_lpips_is_recovered_on_the_shipped_pool(tmp_path):
    """SIMULATED, not people: a scripted annotator prefers the side with the lower LPIPS on the crop,
    through noise, for 200 votes on the app's own pool; the results rank the methods as mean LPIPS does."""
    pool = StudyPool(Path(__file__).resolve().parents[1] / "examples" / "study")
    store, rng, noise = VoteStore(tmp_path / "simulated.sqlite"), random.Random(7), np.random.default_rng(7)
    practice = pool.draw(store, "sim", "simulated", rng).issued
    store.vote(practice.id, "sim", "left" if practice.method_left == PRACTICE_GOOD else "right")
    for _ in range(200):
        trial = pool.draw(store, "sim", "simulated", rng).issued
        lpips = {side: pool.reconstruction(trial.crop, method, trial.bpp)["lpips"]
                 for side, method in (("left", trial.method_left), ("right", trial.method_right))}
        preference = (lpips["right"] - lpips["left"]) / 0.05 + noise.normal()
        store.vote(trial.id, "sim", "same" if abs(preference) < 0.3 else ("left" if preference > 0 else "right"))
    summary = results(store.votes(), pool.methods, store.flagged_annotators(), samples=300)
    mean_lpips = {m: np.mean([r["lpips"] for c in pool.crops.values() for r in c["reconstructions"]
                              if r["method"] == m]) for m in pool.methods}
    overall = sorted((s for s in summary["scores"] if s["bpp"] is None), key=lambda s: -s["score"])
    rank = {s["method"]: i for i, s in enumerate(overall)}
    assert summary["votes"] == 200 and set(rank) == set(pool.methods)
    # Methods apart by more than 0.02 of mean LPIPS are ranked as LPIPS ranks them (a sharp decoder
    # and its faithful one may lie closer on these two crops than 200 noisy votes can tell).
    for better, worse in itertools.permutations(pool.methods, 2):
        if mean_lpips[worse] - mean_lpips[better] > 0.02:
            assert rank[better] < rank[worse], (better, worse, mean_lpips)
    assert overall[0]["low"] > overall[-1]["high"]  # the best and the worst are told apart
    assert summary["metrics"]["lpips"]["agree_pct"] > 70
