"""Wikipedia dumps -> Biography records: streaming, multistream index, parsing, person/living detection."""
