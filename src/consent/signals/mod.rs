//! Decoders and encoders for consent signals (IAB TCF, GPP, US Privacy, GPC).
