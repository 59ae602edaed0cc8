"""Kitchen tickets on ESC/POS network printers: render, transport, spool."""
