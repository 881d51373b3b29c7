"""Reference grammar and image-list rules (no network)."""

from __future__ import annotations

import pytest

from imageferry.core.errors import InputError
from imageferry.core.imagelist import parse_image_list
from imageferry.core.reference import Reference


@pytest.mark.parametrize(
    ("text", "host", "repo", "tag", "digest"),
    [
        ("nginx", "", "nginx", None, None),
        ("a/b/c:1.2-rc_3", "", "a/b/c", "1.2-rc_3", None),
        ("reg.example.com:5000/team/app:v1", "reg.example.com:5000", "team/app", "v1", None),
        ("localhost/app", "localhost", "app", None, None),
        ("10.45.80.1/xxxx/image:tag", "10.45.80.1", "xxxx/image", "tag", None),
        ("my-app__x/y.z:latest", "", "my-app__x/y.z", "latest", None),
        ("app@sha256:" + "a" * 64, "", "app", None, "sha256:" + "a" * 64),
        ("h:1/app:t@sha256:" + "b" * 64, "h:1", "app", "t", "sha256:" + "b" * 64),
    ],
)
def test_reference_grammar(text, host, repo, tag, digest):
    ref = Reference.parse(text)
    assert (ref.host, ref.repository, ref.tag) == (host, repo, tag)
    assert (str(ref.digest) if ref.digest else None) == digest


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Team/App:1", "lower case"),
        ("app:-bad", "tag '-bad' is invalid"),
        ("app@sha256:abc", "not a valid digest"),
        ("a//b", "invalid"),
        ("app:" + "x" * 129, "invalid"),
        ("ap p", "white space"),
        ("-app", "invalid"),
    ],
)
def test_reference_rejects(text, why):
    with pytest.raises(InputError, match=why):
        Reference.parse(text)


def test_docker_hub_gets_library():
    assert str(Reference.parse("nginx:1").with_host("docker.io")) == "docker.io/library/nginx:1"
    assert str(Reference.parse("nginx:1").with_host("reg:5000")) == "reg:5000/nginx:1"


def test_list_comments_renames_and_targets():
    entries = parse_image_list(
        "# header\n\n10.0.0.1/xxxx/image:tag\nsrc/app:1 -> new/name  # keep tag\n"
        "src/app:1 -> new/name:2\nrepo@sha256:" + "c" * 64 + "\n"
    )
    assert [e.line for e in entries] == [3, 4, 5, 6]
    first = entries[0]
    assert str(first.source_ref("company:5000")) == "company:5000/xxxx/image:tag"
    assert str(first.target_ref("site", "yyyy")) == "site/yyyy/image:tag"
    assert str(entries[1].target_ref("site")) == "site/new/name:1"
    assert str(entries[2].target_ref("site", "ns/deep")) == "site/ns/deep/name:2"
    pinned = entries[3].target_ref("site")
    assert pinned.tag is None and pinned.tag_or_digest == "sha256:" + "c" * 64


def test_list_reports_every_bad_line():
    with pytest.raises(InputError) as info:
        parse_image_list(
            "ok/app\nBad/App\nx ->\na -> b -> c\nn -> m@sha256:" + "d" * 64, "list.txt"
        )
    text = str(info.value)
    for n in (2, 3, 4, 5):
        assert f"list.txt, line {n}:" in text
    assert "line 1" not in text


def test_same_image_twice_is_fine_different_images_to_one_tag_are_not():
    from imageferry.core.imagelist import check_unique_targets

    entries = parse_image_list("10.0.0.1/a/b:1\na/b:1\nc/d:1 -> a/b:1\n")
    triples = [(e, e.source_ref("src"), e.target_ref("dst")) for e in entries]
    check_unique_targets(triples[:2], "list")  # one image written twice: harmless
    with pytest.raises(InputError, match="lines 1 and 3 both write dst/a/b:1"):
        check_unique_targets(triples, "list")


@pytest.mark.parametrize(
    ("line", "advice"),
    [
        ("demo/app0:1.0 → demo/x:1", "'->' (two ASCII characters)"),
        ("demo/app0：1.0", "full-width '：'"),
    ],
)
def test_characters_of_a_chinese_input_method_get_advice(line, advice):
    with pytest.raises(InputError, match="line 1: use ") as refused:
        parse_image_list(line + "\n", "list")
    assert advice in str(refused.value)
