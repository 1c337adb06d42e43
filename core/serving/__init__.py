"""What a served app applies to untrusted students: the data folders it may read (roots), bounds
on the work one request may ask for (limits) and uploaded zips of images (uploads). Free of
Streamlit; the CLI uses the work limits too (its user has a shell anyway, so it may lift them)."""
