"""The markers the SDK core leaves in a workflow history: a local activity's, and a patch's (versioning)."""

from __future__ import annotations

LOCAL_ACTIVITY_MARKER = "core_local_activity"
PATCH_MARKER = "core_patch"
