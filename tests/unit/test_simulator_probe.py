def test_probe():
    import simulator  # noqa
