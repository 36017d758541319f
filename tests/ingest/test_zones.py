"""Zone locations and listings: local folders, fsspec URIs, and s3:// through s3fs (in the lock)."""

from upath import UPath

from hybrid_resources.data.paths import zone_entries, zone_files, zone_location


def test_zone_files_lists_regular_visible_finished_files_by_name(tmp_path):
    for name in ("b.csv", "a.parquet", ".hidden.csv", "half.csv.part", "copy.csv.tmp", "notes.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "graph.csv").mkdir()  # a folder named like a file is not a file
    (tmp_path / "link.csv").symlink_to(tmp_path / "b.csv")  # nor is a link to one: it is never followed
    assert [p.name for p in zone_files(tmp_path)] == ["a.parquet", "b.csv", "notes.txt"]
    assert {e.name: e.kind for e in zone_entries(tmp_path) if e.refused} == {"graph.csv": "not_regular_file",
                                                                             "link.csv": "symlink"}
    assert [p.name for p in zone_files(tmp_path, suffixes=(".csv",))] == ["b.csv"]
    assert zone_files(tmp_path / "missing") == []


def test_an_s3_landing_uri_resolves_to_s3fs_without_touching_the_network(monkeypatch):
    monkeypatch.setenv("HYBRID_LANDING_URI", "s3://example-bucket/incoming")
    location = zone_location("landing")
    assert isinstance(location, UPath) and location.protocol == "s3"
    assert type(location.fs).__name__ == "S3FileSystem"  # s3fs is installed: the README's s3:// example loads
    assert location.path.rstrip("/") == "example-bucket/incoming"
