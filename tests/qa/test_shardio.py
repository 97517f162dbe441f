"""The one shard reader (duplexloom/shardio.py): every spec form names the same shards, and every
way of opening a shard (path, gzip, ``pipe:``) yields the same samples, on real tars."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from duplexloom.shardio import expand_shards, iter_shard_members, iter_shard_samples, parent
from duplexloom.timeline.sample_codec import decode_sample


def test_every_spec_form_names_the_same_shards(dataset_dir: Path) -> None:
    shards = dataset_dir / "shards"
    want = [str(shards / "000000.tar"), str(shards / "000001.tar")]
    assert expand_shards(str(dataset_dir)) == want  # the job's output folder
    assert expand_shards(str(shards)) == want  # the shards folder
    assert expand_shards(str(shards / "*.tar")) == want
    assert expand_shards(str(shards / "{000000..000001}.tar")) == want
    assert expand_shards(f"{want[1]}, {want[0]},{want[1]}") == want  # sorted, de-duplicated
    assert expand_shards(f"pipe:cat {want[0]}") == [f"pipe:cat {want[0]}"]  # opened, never listed
    with pytest.raises(FileNotFoundError, match="no shards match"):
        expand_shards(str(shards / "9*.tar"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        expand_shards(str(shards / "000009.tar"))
    assert parent(want[0]) == str(shards)
    assert parent("gs://b/x/shards/000000.tar") == "gs://b/x/shards"


def test_path_gzip_and_pipe_read_the_same_samples(dataset_dir: Path, tmp_path: Path) -> None:
    tar = dataset_dir / "shards" / "000000.tar"
    plain = list(iter_shard_members([str(tar)]))
    assert len(plain) >= 2 and all("json" in m and "chunks.json" in m for _, m in plain)
    for key, members in plain:  # whole samples: they decode
        assert decode_sample(key, members).key == key
    gz = tmp_path / "000000.tar.gz"
    with tar.open("rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert list(iter_shard_members(expand_shards(str(gz)))) == plain
    assert list(iter_shard_members([f"pipe:cat {tar}"])) == plain
    assert list(iter_shard_members([f"pipe:cat {gz}"])) == plain  # a stream ending .tar.gz is gunzipped
    samples = list(iter_shard_samples([str(tar)]))
    assert [(s.shard, s.key, s.members) for s in samples] == [(str(tar), k, m) for k, m in plain]
