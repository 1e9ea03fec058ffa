"""Text: source files read with their line numbers (``sourcefile``) and sandboxed Jinja
templates rendered in a worker process (``templates``, ``template_worker``)."""
