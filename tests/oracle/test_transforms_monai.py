"""segscale apply --rng monai against MONAI 1.4.0 itself, after every step of the chain, on synthetic
cases with RAS, LPS and oblique headers and on the real BraTS case (skipped where absent).

Tolerances (spec section 3.6): images after resampling within 1e-4 absolute + 1e-6 relative (float32
rounding of a float64 computation done in a different order); after normalisation within 1e-4, with
MONAI's sub-1e-6 zero leak snapped to 0 on axis-aligned grids; labels identical off nearest-neighbour tie
planes; draws identical."""
import json
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

monai = pytest.importorskip("monai")
assert monai.__version__ == "1.4.0", f"the oracle is MONAI 1.4.0, found {monai.__version__}"
import monai_chain  # noqa: E402


def small_pipeline(label_map, roi=(32, 32, 16)):
    return {"label_map": label_map, "transforms": [
        {"type": "spacing", "pixdim": [1.5, 1.5, 2.0]}, {"type": "orientation", "axcodes": "RAS"},
        {"type": "rand_spatial_crop", "roi": list(roi)}, {"type": "rand_flip", "prob": 0.5, "spatial_axis": 0},
        {"type": "normalize_intensity", "nonzero": True, "channel_wise": True},
        {"type": "rand_scale_intensity", "factors": 0.1, "prob": 0.5},
        {"type": "rand_shift_intensity", "offsets": 0.1, "prob": 0.5}]}


def run_segscale(segscale_bin, images, label, pipeline, seed, copies, out):
    out.mkdir(parents=True, exist_ok=True)
    pfile = out / "pipeline.json"
    pfile.write_text(json.dumps(pipeline))
    p = subprocess.run([segscale_bin, "apply", "--image", ",".join(map(str, images)), "--label", str(label), "--pipeline",
                        str(pfile), "--seed", str(seed), "--rng", "monai", "--copies", str(copies), "--dump-steps",
                        "--out", str(out)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return json.loads((out / "meta.json").read_text())


def compare_step(name, ours_img, ours_lab, ref, normalised):
    rname, rimg, rlab, tie = ref[:4]
    assert rname == name
    assert ours_img.shape == rimg.shape, name
    assert ours_lab.shape == rlab.shape, name
    if normalised:
        np.testing.assert_allclose(ours_img, rimg, rtol=0, atol=1e-4, err_msg=name)
    else:
        np.testing.assert_allclose(ours_img, rimg, rtol=1e-6, atol=1e-4, err_msg=name)
    off_tie = ~tie[None].repeat(rlab.shape[0], 0)
    assert off_tie.mean() > 0.1, "too few voxels off tie planes to compare"
    assert np.array_equal(ours_lab[off_tie], rlab[off_tie]), f"{name}: labels differ off tie planes"


def check_case(segscale_bin, tmp_path, images, label, pipeline, seed=7, copies=3, snap=True, crop="rand_spatial_crop"):
    meta = run_segscale(segscale_bin, images, label, pipeline, seed, copies, tmp_path)
    cached, copies_ref = monai_chain.run([str(i) for i in images], str(label), pipeline, seed, copies, snap_zero_leak=snap)
    out = Path(tmp_path)
    normalised = False
    for i, ref in enumerate(cached):
        name = ref[0]
        compare_step(name, np.load(out / f"step_cache_{i:02d}_{name}_image.npy"), np.load(out / f"step_cache_{i:02d}_{name}_label.npy"),
                     ref, normalised)
    first_random = len(cached)
    for c, per in enumerate(copies_ref):
        normalised = False
        draws = {d["transform"]: d for d in meta["copies"][c]["draws"]}  # flips drawn twice: the last one's
        for j, ref in enumerate(per):
            name = ref[0]
            normalised |= name == "normalize_intensity"
            stem = out / f"step_{c:04d}_{first_random + j:02d}_{name}"
            compare_step(name, np.load(f"{stem}_image.npy"), np.load(f"{stem}_label.npy"), ref, normalised)
        final_img, final_lab = np.load(out / f"image_{c:04d}.npy"), np.load(out / f"label_{c:04d}.npy")
        np.testing.assert_allclose(final_img, per[-1][1], atol=1e-4)
        assert final_img.dtype == np.float32 and final_lab.dtype == np.float32
        assert set(np.unique(final_lab)) <= {0.0, 1.0}
        assert crop in draws
        for ref in per:
            if ref[0] == "rand_crop_by_pos_neg_label":  # the centre MONAI chose, as its meta records it
                assert draws[ref[0]]["center"] == [int(v) for v in ref[4]], f"sample {c}"
    assert len(meta["copies"]) == len(copies_ref)
    return meta


def synth(segscale_bin, out, orientation, shape="60,56,40", layout="msd"):
    p = subprocess.run([segscale_bin, "synth", "--out", str(out), "--cases", "1", "--shape", shape, "--layout", layout,
                        "--orientation", orientation, "--seed", "5", "--quiet"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return out


@pytest.mark.parametrize("orientation", ["RAS", "LPS"])
def test_synthetic_msd_case_matches_monai(orientation, segscale_bin, tmp_path):
    ds = synth(segscale_bin, tmp_path / "ds", orientation)
    check_case(segscale_bin, tmp_path / "out", [ds / "imagesTr" / "BRATS_001.nii.gz"], ds / "labelsTr" / "BRATS_001.nii.gz",
               small_pipeline("msd"))


def test_oblique_header_matches_monai(segscale_bin, tmp_path):
    ds = synth(segscale_bin, tmp_path / "ds", "RAS", layout="brats21", shape="48,44,30")
    case = ds / "BraTS2021_00000"
    a = np.radians(17.0)
    b = np.radians(9.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    aff = np.eye(4)
    aff[:3, :3] = rz @ rx @ np.diag([1.2, 0.9, 1.7])
    aff[:3, 3] = [-30, 12, 5]
    files = []
    for mod in ("flair", "t1", "t1ce", "t2", "seg"):
        src = nib.load(str(case / f"BraTS2021_00000_{mod}.nii.gz"))
        dst = tmp_path / f"obl_{mod}.nii.gz"
        nib.save(nib.Nifti1Image(np.asanyarray(src.dataobj), aff), str(dst))
        files.append(dst)
    meta = check_case(segscale_bin, tmp_path / "out", files[:4], files[4], small_pipeline("brats21", roi=(32, 32, 32)))
    # The oblique grid is smaller than the roi along z: that axis is kept whole and draws nothing.
    assert meta["copies"][0]["image_shape"][3] < 32


def test_real_brats_case_matches_monai(segscale_bin, shared_data, tmp_path):
    case = shared_data / "brats2021-00006"
    if not case.exists():
        pytest.skip(f"real BraTS case absent ({case}); skipping")
    images = [case / f"BraTS2021_00006_{m}.nii.gz" for m in ("flair", "t1", "t1ce", "t2")]
    pipeline = small_pipeline("brats21", roi=(128, 128, 64))
    meta = check_case(segscale_bin, tmp_path, images, case / "BraTS2021_00006_seg.nii.gz", pipeline, seed=42, copies=2)
    # spec 8c: set_determinism(42) -> copy 0 crop (27,10,12), flip, no scale, shift 0.08374450433387537
    d = {x["transform"]: x for x in meta["copies"][0]["draws"]}
    assert d["rand_spatial_crop"]["start"] == [27, 10, 12]
    assert d["rand_flip"]["applied"] is True
    assert d["rand_scale_intensity"]["applied"] is False
    assert d["rand_shift_intensity"]["offset"] == pytest.approx(0.08374450433387537, abs=0)
    assert meta["cached"]["image_shape"] == [4, 160, 160, 78]


def pos_neg_pipeline(label_map, roi, num_samples, use_image, flips, allow_smaller=False, pos=1.0, neg=2.0, normalize_first=True,
                     pixdim=(1.0, 1.0, 1.0)):
    # The crop centres are drawn from the label's foreground list, so one label voxel decided differently shifts
    # every later index: the spacings here put no voxel on a nearest-neighbour tie plane (1 mm phantoms resampled to
    # 1 or 2 mm), where MONAI's choice is float noise (spec 3.6).
    t = [{"type": "spacing", "pixdim": list(pixdim)}, {"type": "orientation", "axcodes": "RAS"}]
    if normalize_first:  # nnU-Net's order: normalise the whole volume, then crop
        t.append({"type": "normalize_intensity", "nonzero": True, "channel_wise": True})
    t.append({"type": "rand_crop_by_pos_neg_label", "roi": list(roi), "pos": pos, "neg": neg, "num_samples": num_samples,
              "use_image": use_image, "image_threshold": 0.0, "allow_smaller": allow_smaller})
    t += [{"type": "rand_flip", "prob": 0.5, "spatial_axis": a} for a in flips]
    t += [{"type": "rand_scale_intensity", "factors": 0.1, "prob": 1.0}, {"type": "rand_shift_intensity", "offsets": 0.1, "prob": 1.0}]
    return {"label_map": label_map, "transforms": t}


@pytest.mark.parametrize("orientation", ["RAS", "LPS"])
def test_rand_crop_by_pos_neg_label_matches_monai(orientation, segscale_bin, tmp_path):
    """RandCropByPosNegLabeld (pos 1, neg 2, 3 samples per copy) then three flips, draw for draw and voxel for voxel."""
    ds = synth(segscale_bin, tmp_path / "ds", orientation)
    pipeline = pos_neg_pipeline("msd", (24, 20, 12), 3, False, [0, 1, 2])
    meta = check_case(segscale_bin, tmp_path / "out", [ds / "imagesTr" / "BRATS_001.nii.gz"], ds / "labelsTr" / "BRATS_001.nii.gz",
                      pipeline, seed=11, copies=4, crop="rand_crop_by_pos_neg_label")
    assert len(meta["copies"]) == 12 and [c["sample"] for c in meta["copies"][:4]] == [0, 1, 2, 0]
    fg = [d["foreground"] for c in meta["copies"] for d in c["draws"] if d["transform"] == "rand_crop_by_pos_neg_label"]
    assert 0 < sum(fg) < len(fg), "both foreground and background centres drawn"


def test_rand_crop_by_pos_neg_label_image_key_allow_smaller_and_flip_lists_match_monai(segscale_bin, tmp_path):
    """image_key (background only inside the head), a roi longer than the volume along z (allow_smaller), flips
    of a list of axes and of all axes (spatial_axis null), after the crop; normalisation after the crop."""
    ds = synth(segscale_bin, tmp_path / "ds", "LPS")
    pipeline = pos_neg_pipeline("blog", (20, 24, 64), 2, True, [[0, 2], None, 1], allow_smaller=True, pos=1.0, neg=1.0,
                                normalize_first=False, pixdim=(2.0, 2.0, 2.0))
    pipeline["transforms"].insert(-2, {"type": "normalize_intensity", "nonzero": True, "channel_wise": True})
    meta = check_case(segscale_bin, tmp_path / "out", [ds / "imagesTr" / "BRATS_001.nii.gz"], ds / "labelsTr" / "BRATS_001.nii.gz",
                      pipeline, seed=3, copies=4, crop="rand_crop_by_pos_neg_label")
    assert all(c["image_shape"][3] < 64 for c in meta["copies"])  # z kept whole


def test_rand_crop_by_pos_neg_label_too_small_volume_is_an_error_as_in_monai(segscale_bin, tmp_path):
    ds = synth(segscale_bin, tmp_path / "ds", "RAS")
    pipeline = pos_neg_pipeline("msd", (20, 24, 64), 1, False, [0])
    pfile = tmp_path / "p.json"
    pfile.write_text(json.dumps(pipeline))
    p = subprocess.run([segscale_bin, "apply", "--image", str(ds / "imagesTr" / "BRATS_001.nii.gz"), "--label",
                        str(ds / "labelsTr" / "BRATS_001.nii.gz"), "--pipeline", str(pfile), "--rng", "monai", "--out",
                        str(tmp_path / "out")], capture_output=True, text=True)
    assert p.returncode == 1 and "larger than the volume" in p.stderr and "allow_smaller" in p.stderr, p.stderr
    with pytest.raises(ValueError, match="larger than the image size"):
        monai_chain.run([str(ds / "imagesTr" / "BRATS_001.nii.gz")], str(ds / "labelsTr" / "BRATS_001.nii.gz"), pipeline, 0, 1)
