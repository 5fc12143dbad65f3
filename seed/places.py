"""Where the seeded homes are: UK cities, their neighbourhoods, streets and price levels.

Coordinates are the approximate centres of real neighbourhoods (homes are scattered
around them); postcode districts and streets are real, house numbers and postcode units
are made up. Price levels are rough 2020s medians, enough to make sale and rent look right.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Neighbourhood:
    """A postcode district with the name people use for it, its centre and a few streets."""

    district: str
    name: str
    lat: float
    lng: float
    streets: tuple[str, ...]


@dataclass(frozen=True)
class City:
    """A city, its share of the listings, its typical prices and its agents."""

    name: str
    lat: float
    lng: float
    listings: int
    sale_2bed: int
    """Asking price of a typical two-bedroom home, in pounds."""
    rent_2bed: int
    """Monthly rent of a typical two-bedroom home, in pounds."""
    agents: tuple[str, ...]
    """The seeded agents with a branch in the city (uids)."""
    neighbourhoods: tuple[Neighbourhood, ...]


# A city line: name | centre | listings | 2-bed price | 2-bed rent | agents;
# its neighbourhoods follow, indented: district | name | centre | streets.
_TABLE = """
London | 51.5074, -0.1278 | 70 | 560000 | 2350 | seed-agent seed-agent-7
  SW11 | Battersea | 51.4637, -0.1670 | Lavender Hill; Northcote Road; Battersea Rise
  SE15 | Peckham | 51.4700, -0.0690 | Rye Lane; Bellenden Road; Choumert Road
  N1 | Islington | 51.5380, -0.1030 | Upper Street; Essex Road; Canonbury Road
  E8 | Hackney | 51.5450, -0.0550 | Mare Street; Dalston Lane; Graham Road
  NW5 | Kentish Town | 51.5500, -0.1410 | Kentish Town Road; Fortess Road; Leighton Road
  SE1 | Bermondsey | 51.4980, -0.0820 | Bermondsey Street; Tower Bridge Road; Abbey Street
Manchester | 53.4808, -2.2426 | 40 | 245000 | 1250 | seed-agent-2 seed-agent-3
  M14 | Fallowfield | 53.4440, -2.2190 | Wilmslow Road; Ladybarn Lane; Moseley Road
  M4 | Ancoats | 53.4850, -2.2280 | Great Ancoats Street; Blossom Street; Jersey Street
  M21 | Chorlton | 53.4420, -2.2770 | Beech Road; Barlow Moor Road; Wilbraham Road
  M15 | Hulme | 53.4660, -2.2510 | Stretford Road; Jackson Crescent; Rolls Crescent
  M16 | Whalley Range | 53.4520, -2.2580 | Withington Road; Upper Chorlton Road
Leeds | 53.8008, -1.5491 | 35 | 225000 | 1075 | seed-agent-2 seed-agent-4
  LS6 | Headingley | 53.8200, -1.5770 | Otley Road; Cardigan Road; Headingley Lane
  LS7 | Chapel Allerton | 53.8290, -1.5380 | Harrogate Road; Stainbeck Lane
  LS8 | Roundhay | 53.8330, -1.5100 | Street Lane; Roundhay Road; Park Avenue
  LS12 | Armley | 53.7990, -1.5850 | Town Street; Tong Road; Stanningley Road
  LS4 | Kirkstall | 53.8130, -1.5990 | Kirkstall Road; Burley Road; Argie Avenue
Birmingham | 52.4862, -1.8904 | 35 | 215000 | 1050 | seed-agent-4
  B13 | Moseley | 52.4460, -1.8880 | Alcester Road; Wake Green Road; Woodbridge Road
  B17 | Harborne | 52.4600, -1.9530 | High Street; War Lane; Harborne Park Road
  B15 | Edgbaston | 52.4660, -1.9180 | Hagley Road; Calthorpe Road; Wellington Road
  B5 | Digbeth | 52.4750, -1.8850 | Bradford Street; Floodgate Street; Heath Mill Lane
  B29 | Selly Oak | 52.4400, -1.9380 | Bristol Road; Tiverton Road; Heeley Road
Bristol | 51.4545, -2.5879 | 35 | 360000 | 1625 | seed-agent seed-agent-5
  BS6 | Redland | 51.4700, -2.6010 | Whiteladies Road; Chandos Road; Redland Road
  BS7 | Bishopston | 51.4790, -2.5870 | Gloucester Road; Filton Avenue; Ashley Down Road
  BS3 | Bedminster | 51.4400, -2.6020 | North Street; East Street; Coronation Road
  BS5 | Easton | 51.4620, -2.5660 | St Marks Road; Stapleton Road; Devon Road
  BS8 | Clifton | 51.4560, -2.6200 | Royal York Crescent; Regent Street; Clifton Road
Edinburgh | 55.9533, -3.1883 | 30 | 310000 | 1450 | seed-agent-6
  EH6 | Leith | 55.9750, -3.1720 | Great Junction Street; Constitution Street; Duke Street
  EH7 | Leith Walk | 55.9630, -3.1800 | Leith Walk; Easter Road; Montgomery Street
  EH9 | Marchmont | 55.9370, -3.1920 | Marchmont Road; Warrender Park Road; Causewayside
  EH10 | Bruntsfield | 55.9370, -3.2080 | Bruntsfield Place; Leamington Terrace
  EH3 | New Town | 55.9580, -3.2000 | Dundas Street; Howe Street; Cumberland Street
Glasgow | 55.8642, -4.2518 | 30 | 185000 | 1100 | seed-agent-6 seed-agent-8
  G12 | Hillhead | 55.8750, -4.2930 | Byres Road; Great George Street; Cranworth Street
  G11 | Partick | 55.8700, -4.3080 | Dumbarton Road; Crow Road; Hyndland Street
  G41 | Shawlands | 55.8290, -4.2850 | Pollokshaws Road; Kilmarnock Road; Skirving Street
  G31 | Dennistoun | 55.8610, -4.2110 | Duke Street; Alexandra Parade; Meadowpark Street
  G3 | Finnieston | 55.8650, -4.2820 | Argyle Street; Kent Road; Old Dumbarton Road
Cardiff | 51.4816, -3.1791 | 25 | 245000 | 1150 | seed-agent-5 seed-agent-8
  CF24 | Roath | 51.4900, -3.1640 | Albany Road; City Road; Crwys Road
  CF11 | Canton | 51.4810, -3.2050 | Cowbridge Road East; Cathedral Road; Llandaff Road
  CF14 | Heath | 51.5080, -3.1850 | Whitchurch Road; Allensbank Road; Heathwood Road
  CF23 | Penylan | 51.4970, -3.1520 | Penylan Road; Ty-Draw Road; Marlborough Road
  CF10 | Cardiff Bay | 51.4640, -3.1650 | Bute Street; Lloyd George Avenue; Stuart Street
"""

INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
"""Letters a UK inward postcode uses (never C, I, K, M, O or V)."""


def _point(text: str) -> tuple[float, float]:
    lat, lng = text.split(",")
    return float(lat), float(lng)


def _parse(table: str) -> tuple[City, ...]:
    cities: list[City] = []
    for line in table.strip("\n").splitlines():
        cells = [c.strip() for c in line.split("|")]
        if not line.startswith(" "):
            name, centre, listings, sale, rent, agents = cells
            cities.append(
                City(
                    name,
                    *_point(centre),
                    int(listings),
                    int(sale),
                    int(rent),
                    tuple(agents.split()),
                    (),
                )
            )
            continue
        district, hood, centre, streets = cells
        here = Neighbourhood(district, hood, *_point(centre), tuple(streets.split("; ")))
        cities[-1] = replace(cities[-1], neighbourhoods=(*cities[-1].neighbourhoods, here))
    return tuple(cities)


CITIES: tuple[City, ...] = _parse(_TABLE)


def city_named(name: str) -> City:
    """The seeded city called ``name``."""
    return next(c for c in CITIES if c.name == name)
