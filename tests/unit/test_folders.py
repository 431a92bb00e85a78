"""Walking a user's image folder for search (folders.py): visible files in a stable order, and a
signature that changes with the folder's content."""

import os

from alignedreid.folders import folder_signature, visible_files


def test_visible_files_sorted_without_hidden_ones(tmp_path):
    for rel in ("b/2.jpg", "b/1.png", "a.jpg", ".hidden/x.jpg", "b/.DS_Store"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in visible_files(tmp_path)] == ["a.jpg", "b/1.png", "b/2.jpg"]


def test_signature_follows_adds_changes_and_removals(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"1")
    first = folder_signature(tmp_path)
    assert folder_signature(tmp_path) == first
    (tmp_path / "b.jpg").write_bytes(b"2")
    added = folder_signature(tmp_path)
    assert added != first
    os.utime(tmp_path / "b.jpg", ns=(1, 1))
    assert folder_signature(tmp_path) != added
    (tmp_path / "b.jpg").unlink()
    assert folder_signature(tmp_path) == first
    assert folder_signature(tmp_path / "nope").startswith("missing:")
