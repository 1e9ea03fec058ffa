"""Text: source files read with their line numbers (``sourcefile``) and user-authored Jinja
templates, rendered in a sandbox (``sandbox``) inside a worker process under a time and memory
budget (``templates``, ``template_worker``)."""
