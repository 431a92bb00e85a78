"""Walking a user's image folder for search (folders.py): visible files in a stable order, and a
signature that changes with the folder's content."""

import os

from alignedreid.foundation.folders import folder_signature, visible_files


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


def test_the_walk_lists_every_entry_and_never_opens_one(tmp_path):
    """Hidden entries and linked folders come with a reason; FIFOs, dangling and looping links and
    non-UTF-8 names neither hang nor crash the walk or the signature (which the Snakefile computes)."""
    from alignedreid.foundation.folders import HIDDEN, LINKED_FOLDER, printable, walk_entries

    (tmp_path / "a.jpg").write_bytes(b"x")
    os.mkfifo(tmp_path / "fifo")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling.jpg")
    os.symlink(tmp_path / "self.jpg", tmp_path / "self.jpg")
    odd = os.fsdecode(b"\xff\xfe.jpg")
    (tmp_path / odd).write_bytes(b"y")
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    (tmp_path / ".git").mkdir()
    entries = {p.name: reason for p, reason in walk_entries(tmp_path)}
    assert entries == {"a.jpg": None, "fifo": None, "dangling.jpg": None, "self.jpg": None, odd: None, "link": LINKED_FOLDER, ".git": HIDDEN}
    sig = folder_signature(tmp_path)
    (tmp_path / odd).write_bytes(b"yy")
    assert folder_signature(tmp_path) != sig
    assert printable(tmp_path / odd).endswith("\\xff\\xfe.jpg") and printable("a\nb\\c") == "a\\nb\\\\c"
