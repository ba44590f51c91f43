//! `assisters serve`: the local implementation of the Assisters API.
