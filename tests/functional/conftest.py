"""Nova's functional tests need the ``nova`` extra."""

import pytest

pytest.importorskip('nova.tests.functional.integrated_helpers')
