"""aby3: 3-party replicated sharing, honest majority (see ``protocol``)."""
