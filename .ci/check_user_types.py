"""Read mypy's output on .ci/user_types.py: fungrad found, its types seen, one error."""

import sys

out, status = open(sys.argv[1]).read(), int(sys.argv[2])
assert "Cannot find implementation or library stub" not in out, "mypy did not find fungrad"
assert 'Unexpected keyword argument "alhpa" for "SGD"' in out, out
assert status == 1 and "Found 1 error" in out, f"exactly one error expected (exit {status})"
revealed = [line for line in out.splitlines() if "Revealed type is" in line]
assert len(revealed) == 6, revealed
assert not any('Revealed type is "Any"' in line for line in revealed), revealed
print("mypy on a user's script: fungrad found, its types seen, the misspelling caught")
