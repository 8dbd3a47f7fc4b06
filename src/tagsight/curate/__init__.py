"""Quality curation as in Emu: automatic filters, then people, then a small photogenic set to quality-tune on."""
