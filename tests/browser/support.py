"""Constants shared by the browser fixtures and tests."""

LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
