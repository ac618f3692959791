"""Reports: tables, plots and HTML pages comparing evaluation runs."""
