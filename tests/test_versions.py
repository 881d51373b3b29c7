"""Version order of tags (watch's 'at or above'): numbers as numbers, a leading v, pre-releases."""

from __future__ import annotations

import pytest

from imageferry.core.versions import parse_version, tags_at_or_above, version_sorted


@pytest.mark.parametrize(
    "tag", ["1", "1.25", "v2.0.3", "V3", "1.4.0-rc.1", "20240501", "1.2.3.4", "2.0-alpine"]
)
def test_versions_are_recognised(tag):
    assert parse_version(tag) is not None


@pytest.mark.parametrize(
    "tag", ["latest", "stable", "main-abc123", "1.2_beta", "v", "1.", ".1", "1..2", "1.2-", "x1.2"]
)
def test_other_tags_are_not_versions(tag):
    assert parse_version(tag) is None


def test_numbers_compare_as_numbers_and_pre_releases_rank_below():
    tags = ["1.10", "1.9", "v1.2", "1.2.0", "1.4.0-rc.2", "1.4.0-rc.10", "1.4.0", "latest", "2"]
    assert version_sorted(tags) == [
        "1.2.0",
        "v1.2",
        "1.4.0-rc.2",
        "1.4.0-rc.10",
        "1.4.0",
        "1.9",
        "1.10",
        "2",
        "latest",
    ]
    assert parse_version("1.2") == parse_version("v1.2.0")


def test_at_or_above_leaves_out_lower_and_non_versions():
    tags = ["0.9", "1.0", "1.2", "1.2-rc1", "1.10", "v2.0", "latest", "nightly"]
    assert tags_at_or_above(tags, "1.2") == ["1.2", "1.10", "v2.0"]
    assert tags_at_or_above(tags, "v1.2-rc1") == ["1.2-rc1", "1.2", "1.10", "v2.0"]


def test_a_floor_that_is_not_a_version_follows_only_itself():
    assert tags_at_or_above(["1.0", "latest"], "latest") == ["latest"]
    assert tags_at_or_above(["1.0"], "latest") == []
