"""The harness's own tests."""

# A Firebase project of its own that test_package.py runs in a fresh venv; its tests use
# the plugin as another project would and are not part of this suite.
collect_ignore = ["sample_project"]
